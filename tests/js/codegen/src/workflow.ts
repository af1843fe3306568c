// A typical frontend module: the workflow's operations, typed by graphql-codegen's client
// preset (./gql is generated from schema.graphql by the README's codegen.ts), used with
// Apollo Client 4. tests/test_codegen.py generates ./gql and type-checks this file with tsc.
import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { graphql } from './gql';
import type { ProductInput } from './gql/graphql';

export const CreateSession = graphql(`
  mutation CreateSession {
    createSession {
      session { id sessionId state version expiresAt }
      userErrors { field message code }
      operationId
    }
  }
`);

export const AddProduct = graphql(`
  mutation AddProduct($sessionId: ID!, $input: ProductInput!, $expectedVersion: Int) {
    addProduct(sessionId: $sessionId, input: $input, expectedVersion: $expectedVersion) {
      session {
        id
        state
        version
        product { productCode generalPrice taxes startDate productCategory }
        progress { id percentage canCommit expiresAt }
      }
      userErrors { field message code }
    }
  }
`);

export const Catalog = graphql(`
  query ProductForm {
    catalog { product { fields { name label required maxLength choices { name label } } } }
  }
`);

export const client = new ApolloClient({
  link: new HttpLink({ uri: 'http://localhost:8000/graphql' }),
  cache: new InMemoryCache(),
});

export const workshop: ProductInput = {
  productName: 'Advanced OT Workshop 2026',
  productCode: 'OSOT-WS-2026',
  productDescription: 'Professional development workshop for OTs.',
  productCategory: 'EVENT', // enums are string unions (enumsAsTypes)
  productStatus: 'AVAILABLE',
  productGlCode: 'WORKSHOPS_AND_WEBINARS_4475',
  userType: 'OT_OTA',
  generalPrice: 199.99, // Money: a number or a decimal string
  taxes: '13',
  startDate: '2026-03-31', // Date: YYYY-MM-DD
  productYear: '2026',
};

export async function addWorkshop(): Promise<number | null> {
  const created = await client.mutate({ mutation: CreateSession });
  const sessionId: string | undefined = created.data?.createSession.session?.sessionId;
  if (!sessionId) return null;
  const added = await client.mutate({
    mutation: AddProduct,
    variables: { sessionId, input: workshop, expectedVersion: 1 },
  });
  const session = added.data?.addProduct.session;
  const price: number | null | undefined = session?.product?.generalPrice; // Money out: number
  const start: string | null | undefined = session?.product?.startDate;
  const percentage: number | undefined = session?.progress.percentage;
  const fields: (string[] | null)[] = added.data?.addProduct.userErrors.map((e) => e.field) ?? [];
  void [start, fields];
  return price ?? percentage ?? null;
}

// The generated types catch what the server would refuse:
export const wrongEnum: ProductInput = {
  // @ts-expect-error -- not a ProductCategory
  productCategory: 'WORKSHOP',
};
export const wrongMoney: ProductInput = {
  // @ts-expect-error -- Money is a number or a string
  generalPrice: true,
};
